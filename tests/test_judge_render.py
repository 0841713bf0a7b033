"""``livecomposer judge`` on a tiny tune through the shipped duet preset (offline engine, fixed seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import pytest

from livecomposer.cli import main
from livecomposer.judge.run import JudgeError, gather

ROOT = Path(__file__).resolve().parents[1]
DUET = ROOT / "presets" / "duet.yaml"


@pytest.fixture
def tune(tmp_path: Path) -> Path:
    """Two 4-beat phrases in G major at 100 bpm, eighths and quarters."""
    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0)])
    phrases = [[(67, 1), (71, 1), (74, 0.5), (72, 0.5), (71, 1)], [(69, 0.5), (71, 0.5), (72, 1), (66, 1), (67, 1)]]
    for phrase in phrases:
        for pitch, beats in phrase:
            tr.append(mido.Message("note_on", note=pitch, velocity=90, time=0))
            tr.append(mido.Message("note_off", note=pitch, velocity=0, time=int(480 * beats * 0.9)))
            tr.append(mido.Message("note_off", note=0, velocity=0, time=int(480 * beats * 0.1)))  # a rest in ticks
    mf.tracks.append(tr)
    path = tmp_path / "tune.mid"
    mf.save(path)
    return path


def test_duet_answers_every_call_on_its_own_channel_and_seeds_differ(tune: Path):
    g = gather(DUET, [tune], phrases=4, seeds=2)
    assert g.mode == "answers" and g.calls == 2 and len(g.machine_exchanges) == 4
    assert all(x.answer for x in g.machine_exchanges), "every call gets an answer"
    for x in g.machine_exchanges:  # answers come after their call, inside its slot
        assert min(n.start for n in x.answer) >= max(n.start for n in x.call)
    by_seed = {s: [[n.pitch for n in x.answer] for x in g.machine_exchanges if x.seed == s] for s in (0, 1)}
    assert by_seed[0] != by_seed[1]
    again = gather(DUET, [tune], phrases=4, seeds=1)
    assert [[n.pitch for n in x.answer] for x in again.machine_exchanges] == by_seed[0], "a seed renders the same answers"
    assert len(g.human_exchanges) == 1  # phrase 1 answers phrase 0


def test_judge_command_prints_machine_and_human_figures(tune: Path, capsys, tmp_path: Path):
    assert main(["judge", str(DUET), str(tune), "--phrases", "4", "--json", "--wav", str(tmp_path / "wav")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "answers" and out["calls"] == 2
    figures = out["figures"]
    assert figures["answered"]["machine"] == 1.0
    assert figures["in_key"]["human"] == 1.0  # the second phrase is all in G major
    assert figures["kinship"]["human"] == pytest.approx(4 / 6, abs=1e-3)  # eighths {0,2,4,5,6} vs {0,1,2,4,6}
    assert 0 <= figures["in_key"]["machine"] <= 1
    assert out["per_file"][str(tune)]["kinship"] == figures["kinship"]  # one file: the same figures
    assert (tmp_path / "wav" / "tune.wav").stat().st_size > 1000
    assert main(["judge", str(DUET), str(tune)]) == 0
    table = capsys.readouterr().out
    assert "machine" in table and "human" in table and "in key" in table


def test_phrases_are_refused_where_there_are_no_answers(tune: Path):
    with pytest.raises(JudgeError, match="--phrases"):
        gather(ROOT / "presets" / "harmonizer.yaml", [tune], phrases=4, seeds=1)
