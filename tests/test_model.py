"""The streaming model: stepwise == batch, state round trips, constraints, seeds, safe loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from livecomposer.model import CheckpointError, load_model, shipped_models
from livecomposer.model import checkpoint
from livecomposer.model.api import MACHINE_VOICE, PERFORMER_VOICE, Constraints, ModelEvent
from livecomposer.model.network import EventRNN, NetConfig, StreamingModel
from livecomposer.model.tokens import dt_bin, vel_bin, voice_state


@pytest.fixture(scope="module", params=[True, False], ids=["relative", "absolute"])
def net(request) -> EventRNN:
    torch.manual_seed(1)
    n = EventRNN(NetConfig(hidden=48, embed=24, head=32, relative=request.param))
    with torch.no_grad():  # a random net with a visible h0, so reset matters
        n.h0.normal_(0, 0.3)
    return n.eval()


@pytest.fixture
def model(net) -> StreamingModel:
    return StreamingModel(net, name="test")


def random_events(n: int, seed: int = 0) -> list[ModelEvent]:
    rng = np.random.default_rng(seed)
    return [ModelEvent(float(rng.choice([0.0, 0.003, 0.1, 0.25, 0.7, 3.0])), int(rng.integers(30, 90)),
                       int(rng.choice([0, 40, 90, 127])), int(rng.integers(2))) for _ in range(n)]


def test_stepwise_feed_equals_batch_forward(net, model):
    evs = random_events(40)
    t = lambda xs: torch.tensor([xs])
    v, p = t([vel_bin(e.velocity) for e in evs]), t([e.pitch for e in evs])
    d, vo = t([dt_bin(e.dt) for e in evs]), t([e.voice for e in evs])
    _, prev = voice_state(v[0].numpy(), p[0].numpy(), vo[0].numpy())
    with torch.no_grad():
        before, last = net.run(v, p, d, vo, torch.from_numpy(prev)[None])
    for i, e in enumerate(evs):
        np.testing.assert_allclose(model.hidden_features(), before[0, i].numpy(), atol=1e-5)
        model.feed(e)
    np.testing.assert_allclose(model.hidden_features(), last[0, 0].numpy(), atol=1e-5)
    # The heads agree too: log p(v), log p(pitch | v), log p(dt | v, pitch) at the last state.
    last_machine = [e.pitch for e in evs if e.voice == 1 and e.velocity > 0][-1]
    with torch.no_grad():
        hb = last[0]
        known = [torch.tensor([3]), torch.tensor([128]), torch.tensor([64])]
        ref = net.head_logits(1, hb, torch.tensor([1]), known, torch.tensor([last_machine]))
        ref = torch.log_softmax(ref, -1)[0].numpy()
    np.testing.assert_allclose(model.log_probs(1, 1, {0: 3}), ref, atol=1e-4)


def test_state_round_trip_and_reset(model):
    for e in random_events(10):
        model.feed(e)
    state = model.get_state()
    h, held = model.hidden_features(), model.held_pitches()
    a = model.sample(Constraints(), np.random.default_rng(5))
    for e in random_events(7, seed=3):  # look ahead ...
        model.feed(e)
    assert not np.allclose(model.hidden_features(), h)
    model.set_state(state)  # ... and roll back
    np.testing.assert_array_equal(model.hidden_features(), h)
    assert model.held_pitches() == held
    assert model.sample(Constraints(), np.random.default_rng(5)) == a
    model.reset()
    assert model.held_pitches() == frozenset()


def test_held_pitches_follow_note_ons_and_offs(model):
    model.feed(ModelEvent(0.0, 60, 90, PERFORMER_VOICE))
    model.feed(ModelEvent(0.0, 64, 90, MACHINE_VOICE))
    assert model.held_pitches() == {60, 64}
    model.feed(ModelEvent(0.2, 60, 0, PERFORMER_VOICE))
    assert model.held_pitches() == {64}


def test_same_seed_same_samples_and_sample_leaves_state(model):
    for e in random_events(5):
        model.feed(e)
    h = model.hidden_features()
    a = [model.sample(Constraints(temperature=1.3), np.random.default_rng(42)) for _ in range(3)]
    b = [model.sample(Constraints(temperature=1.3), np.random.default_rng(42)) for _ in range(3)]
    assert a == b
    np.testing.assert_array_equal(model.hidden_features(), h)
    rng = np.random.default_rng(1)
    draws = {model.sample(Constraints(temperature=1.5), rng) for _ in range(30)}
    assert len(draws) > 5  # it really samples


def test_pitch_range_classes_and_exclusions(model):
    rng = np.random.default_rng(0)
    c = Constraints(pitch_range=(55, 79), pitch_classes=frozenset({0, 2, 4, 5, 7, 9, 11}), note_on=True,
                    exclude_pitches=frozenset({60, 62}), temperature=2.0)
    for _ in range(200):
        e = model.sample(c, rng)
        assert e.velocity > 0 and 55 <= e.pitch <= 79 and e.pitch % 12 in c.pitch_classes
        assert e.pitch not in (60, 62)
        assert e.voice == MACHINE_VOICE


def test_note_offs_only_for_held_notes_of_that_voice(model):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="no event satisfies"):
        model.sample(Constraints(note_on=False), rng)  # nothing held
    model.feed(ModelEvent(0.0, 50, 80, PERFORMER_VOICE))
    model.feed(ModelEvent(0.0, 67, 80, MACHINE_VOICE))
    for _ in range(50):
        e = model.sample(Constraints(note_on=False, temperature=2.0), rng)
        assert (e.pitch, e.velocity, e.voice) == (67, 0, MACHINE_VOICE)


def test_max_polyphony(model):
    rng = np.random.default_rng(0)
    for p in (60, 64, 67):
        model.feed(ModelEvent(0.0, p, 80, MACHINE_VOICE))
    for _ in range(100):
        e = model.sample(Constraints(max_polyphony=3, temperature=2.0), rng)
        assert e.velocity == 0 and e.pitch in (60, 64, 67)
    ons = [model.sample(Constraints(max_polyphony=4, temperature=2.0), rng) for _ in range(200)]
    assert any(e.velocity > 0 for e in ons)
    assert all(e.pitch not in (60, 64, 67) for e in ons if e.velocity > 0)  # never re-strike a held key


def test_fixed_fields_and_ranges(model):
    rng = np.random.default_rng(0)
    for _ in range(50):
        e = model.sample(Constraints(pitch=72, dt=0.125, temperature=2.0), rng)
        assert (e.pitch, e.dt) == (72, 0.125) and e.velocity > 0
        e = model.sample(Constraints(velocity=99, temperature=2.0, dt_range=(0.1, 0.3)), rng)
        assert e.velocity == 99 and 0.1 <= e.dt <= 0.3
        e = model.sample(Constraints(note_on=True, velocity_range=(30, 40), dt_range=(0.0, 0.002), temperature=2.0), rng)
        assert 30 <= e.velocity <= 40 and 0.0 <= e.dt <= 0.002
    # Greedy is deterministic whatever the rng.
    g = Constraints(temperature=0.0, note_on=True)
    assert model.sample(g, np.random.default_rng(1)).pitch == model.sample(g, np.random.default_rng(2)).pitch


def test_top_p_narrows_choices(model):
    rng = np.random.default_rng(0)
    wide = {model.sample(Constraints(note_on=True, temperature=1.0), rng).pitch for _ in range(300)}
    narrow = {model.sample(Constraints(note_on=True, top_p=0.05), rng).pitch for _ in range(300)}
    assert len(narrow) < len(wide) and len(narrow) <= 3


# --- checkpoints ----------------------------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARKER']}",))


def test_checkpoint_round_trip(net, tmp_path):
    checkpoint.save(tmp_path / "m", net.state_dict(), {"name": "m", "net": net.cfg.as_dict()})
    m = load_model(tmp_path / "m")
    assert m.name == "m" and m.hidden_features().shape == (48,)
    assert load_model(tmp_path / "m" / "model.safetensors").name == "m"


def test_pickles_and_other_files_are_refused(net, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    folder = tmp_path / "evil"
    checkpoint.save(folder, net.state_dict(), {"name": "evil", "net": net.cfg.as_dict()})
    (folder / "model.safetensors").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(folder)
    loose = tmp_path / "model.pt"
    loose.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match="pickle"):
        load_model(loose)
    zipped = tmp_path / "torchsave.pt"
    torch.save(net.state_dict(), zipped)
    with pytest.raises(CheckpointError, match="zip"):
        load_model(zipped)
    assert not marker.exists()
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a livecomposer checkpoint"):
        load_model(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_model("no-such-model-anywhere")


@pytest.mark.parametrize("name", shipped_models())
def test_shipped_models_load_and_play(name):
    m = load_model(name)
    rng = np.random.default_rng(0)
    m.feed(ModelEvent(0.0, 67, 80, PERFORMER_VOICE))
    e = m.sample(Constraints(note_on=True, pitch_classes=frozenset({7, 9, 11, 0, 2, 4, 6})), rng)
    assert e.pitch % 12 in {7, 9, 11, 0, 2, 4, 6}


def test_bench_measures_every_shipped_model():
    from livecomposer.bench import BenchOptions
    from livecomposer.bench.model import measure

    assert shipped_models(), "models/ ships at least one model"
    ms = {m.name: m for m in measure(BenchOptions(quick=True))}
    for name in shipped_models():
        for part in ("feed", "sample", "feed+sample"):
            m = ms[f"model.{name}.{part}"]
            assert m.n == 500 and 0 < m.median_us <= m.p99_us <= m.max_us
