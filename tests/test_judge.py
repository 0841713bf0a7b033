"""The judge's figures on hand-built notes whose answers are known."""

from __future__ import annotations

import math

import mido
import pytest

from livecomposer.judge import metrics as m
from livecomposer.judge.figures import answer_figures, part_figures
from livecomposer.judge.phrases import calls, cut, read_piece, slot_beats, to_messages
from livecomposer.judge.run import Exchange, Part, bass_line
from livecomposer.kernel.theory import Key

C_MAJOR = Key(0, "major")


def line(pitches, start=0.0, length=1.0):
    """One note per ``length`` beats from ``start``."""
    return [m.Note(start + i * length, start + (i + 1) * length, p) for i, p in enumerate(pitches)]


def test_c_major_scale_is_all_in_c_major_and_key_is_found():
    scale = line([60, 62, 64, 65, 67, 69, 71, 72])
    assert m.in_key(scale, C_MAJOR) == m.Share(8, 8)
    assert m.key_of(scale + line([60, 64, 67, 60], start=8, length=2)) == C_MAJOR
    assert m.in_key(line([60, 61, 66, 67]), C_MAJOR).value == 0.5


def test_entropy_of_twelve_equal_classes_is_log2_12_and_of_one_class_zero():
    assert m.pitch_class_entropy(line(range(60, 72))) == pytest.approx(math.log2(12))
    assert m.pitch_class_entropy(line([60, 72, 48])) == 0.0
    assert m.pitch_class_entropy(line([60, 62])) == pytest.approx(1.0)
    assert m.pitch_class_entropy([]) is None


def test_repetition_run_steps_and_leaps():
    notes = line([60, 62, 62, 62, 62, 69, 70, 60])  # intervals 2, 0, 0, 0, 7, 1, -10
    assert m.repeated(notes) == m.Share(3, 7)
    assert m.longest_run(notes) == 4
    assert m.steps(notes) == m.Share(2, 7)
    assert m.leaps(notes) == m.Share(2, 7)
    assert m.pitch_range(notes) == 10
    assert m.longest_run(line([60, 62])) == 1 and m.longest_run([]) == 0


def test_intervals_follow_time_not_list_order():
    notes = [m.Note(1, 2, 64), m.Note(0, 1, 60)]
    assert m.intervals(notes) == [4]


def test_consonance_counts_perfect_fourth_and_not_seconds_or_tritone():
    melody = [m.Note(0, 4, 72)]
    assert m.consonant(72, 67) and m.consonant(72, 65) and m.consonant(72, 57)  # 5th, 4th, minor 3rd + octave
    assert not m.consonant(72, 71) and not m.consonant(72, 66) and not m.consonant(72, 62)
    bass = line([48, 53, 55, 50])  # octave, 4th, 5th, minor 7th under C
    assert m.consonance(bass, melody) == m.Share(3, 4)
    assert m.consonance(line([48], start=5), melody) == m.Share(0, 0)  # nothing sounding: not counted


def test_note_in_chord_per_sixteenth_frame():
    melody = [m.Note(0, 1, 64), m.Note(1, 2, 62)]  # E for 4 frames, then D for 4
    chord = [m.Note(0, 2, 60), m.Note(0, 2, 64), m.Note(0, 2, 67)]  # C major for both beats
    assert m.note_in_chord(chord, melody) == m.Share(4, 8)
    assert m.note_in_chord(line([60], start=4), melody) == m.Share(0, 0)


def test_rhythm_grid_and_jaccard():
    call = [m.Note(t, t + 0.5, 60) for t in (0, 0.5, 1, 2, 3)]  # eighths 0 1 2 4 6
    answer = [m.Note(t, t + 0.5, 62) for t in (10, 11, 12, 12.5)]  # from its first onset: 0 2 4 5
    assert m.rhythm_grid(call, 4) == {0, 1, 2, 4, 6}
    assert m.rhythm_grid(answer, 4) == {0, 2, 4, 5}
    assert m.jaccard(m.rhythm_grid(call, 4), m.rhythm_grid(answer, 4)) == pytest.approx(3 / 6)
    assert m.jaccard(frozenset(), frozenset()) is None
    assert m.onset_grid(call, 0, 1) == {0, 1}  # only the first beat


def test_cadence_on_tonic_triad_tones():
    assert m.tonic_triad(C_MAJOR) == {0, 4, 7}
    assert m.tonic_triad(Key(9, "minor")) == {9, 0, 4}
    assert m.ends_on_tonic_triad(line([62, 65, 67]), C_MAJOR)
    assert not m.ends_on_tonic_triad(line([67, 65, 62]), C_MAJOR)
    assert m.ends_on_tonic_triad([], C_MAJOR) is None


def test_groove_consistency_as_muspy_code_computes_it():
    steady = [m.Note(b, b + 1, 48) for b in range(8)]  # the same pattern in two bars
    assert m.groove_consistency(steady) == 1.0
    # bar 1 has 4 onsets, bar 2 only its first: 3 positions differ out of 4 * 24
    changed = [m.Note(b, b + 1, 48) for b in (0, 1, 2, 3, 4)]
    assert m.groove_consistency(changed) == pytest.approx(1 - 3 / 96)
    assert m.groove_consistency(line([48, 50])) is None  # one bar: nothing to compare


def test_empty_beats_and_grid():
    notes = [m.Note(0, 1, 48), m.Note(2.5, 3, 50)]  # beats 0 and 2 sound, 1 and 3 empty
    assert m.empty_beats(notes, 0, 4) == m.Share(2, 4)
    onsets = [m.Note(t, t + 0.1, 60) for t in (0.0, 0.26, 0.5 + 0.02, 0.6)]
    assert m.on_grid(onsets, 4, 0.03) == m.Share(3, 4)
    assert m.on_grid(onsets, 2, 0.03) == m.Share(2, 4)


def test_voice_movement_pairs_voices_from_the_top():
    chords = [m.Note(0, 1, 55), m.Note(0, 1, 60), m.Note(1, 2, 53), m.Note(1, 2, 62)]
    assert m.chords(chords) == [[55, 60], [53, 62]]
    assert m.voice_movement(chords) == pytest.approx(2.0)
    held = [m.Note(0, 2, 48), m.Note(0, 1, 60), m.Note(1, 2, 64)]  # bass held: moves 0
    assert m.voice_movement(held) == pytest.approx((4 + 0) / 2)


def test_diversity_of_answers():
    assert m.edit_distance([60, 62, 64], [60, 64]) == 1
    assert m.edit_distance([], [1, 2]) == 2
    assert m.distinct([[60, 62], [60, 62], [60, 64], [67]]) == 0.75
    assert m.mean_edit_distance([[60, 62], [60, 62]]) == 0.0
    assert m.mean_edit_distance([[60, 62], [64, 65]]) == 1.0


def test_answer_figures_pool_answers_and_flag_new_runs():
    call = line([60, 62, 64, 65], length=0.5)
    plain = Exchange(call, line([67, 65, 64, 60], start=4, length=0.5), C_MAJOR, 4, "f", 0, 0)
    stuck = Exchange(call, line([62, 62, 62, 62, 62], start=4, length=0.5), C_MAJOR, 4, "f", 0, 1)
    silent = Exchange(call, [], C_MAJOR, 4, "f", 1, 0)
    f = answer_figures([plain, stuck, silent])
    assert f["answered"] == pytest.approx(2 / 3)
    assert f["repeated"] == pytest.approx(4 / 7)
    assert f["longest_run"] == 5 and f["new_runs"] == 0.5
    assert f["kinship"] == pytest.approx((1 + 4 / 5) / 2)  # same eighths; one more eighth
    assert f["cadence"] == 0.5
    assert f["distinct"] == 1.0 and f["edit_distance"] == 1.0


def test_part_figures_of_a_bass_under_a_melody():
    melody = line([72, 74, 76, 77, 79, 77, 76, 74])
    bass = line([48, 43, 45, 41, 43, 50, 48, 55])  # 8th, 5th... one tritone-free line
    f = part_figures([Part(bass, melody, C_MAJOR, 0, 8, 4, 0.05)], monophonic=True)
    assert f["per_beat"] == 1.0 and f["grid16"] == 1.0 and f["empty"] == 0.0 and f["groove"] == 1.0
    assert f["consonance"] == pytest.approx(m.consonance(bass, melody).value)
    assert part_figures([Part(bass, melody, C_MAJOR, 0, 8, 4, 0.05)], monophonic=False)["repeated"] is None


def test_bass_line_keeps_the_lowest_sounding_notes():
    voices = [m.Note(0, 2, 48), m.Note(0, 1, 55), m.Note(1, 2, 57), m.Note(2, 3, 50), m.Note(2, 3, 59)]
    assert [n.pitch for n in bass_line(voices)] == [48, 50]


def test_cut_phrases_and_lay_out_calls(tmp_path):
    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(90), time=0)])
    for i, p in enumerate([60, 62, 64, 65, 67, 69]):  # one note a beat, the 5th after a beat of rest
        tr.append(mido.Message("note_on", note=p, velocity=80, time=480 if i == 4 else 0))
        tr.append(mido.Message("note_off", note=p, velocity=0, time=480))
    mf.tracks.append(tr)
    mf.save(tmp_path / "t.mid")
    piece = read_piece(tmp_path / "t.mid")
    assert piece.bpm == pytest.approx(90) and piece.others == [] and piece.end == 7
    assert [n.start for n in piece.performer] == [0, 1, 2, 3, 5, 6]
    assert [[n.pitch for n in ph] for ph in cut(piece.performer, 4)] == [[60, 62, 64, 65], [67, 69]]
    assert slot_beats(4, 4) == 12
    cs = calls(piece, 4, 4)
    assert [(c.index, c.start, c.slot_end) for c in cs] == [(0, 0, 12), (1, 12, 24)]
    assert [n.start for n in cs[1].notes] == [13, 14]
    msgs = to_messages(cs[1].notes, 90)
    assert msgs[0] == (round(13 * 60e9 / 90), bytes([0x90, 67, 80]))
    assert len(msgs) == 4


def test_consonance_hears_a_legato_overlap_as_the_next_note():
    # the performer's F# is released 10 ms after G starts; the machine's B, played with G, is heard with G
    melody = [m.Note(0, 1.02, 66), m.Note(1, 2, 67)]
    assert m.consonance([m.Note(1.005, 2, 59)], melody) == m.Share(1, 1)


def test_phrases_are_whole_bars_and_the_preset_takes_the_files_tempo_and_metre():
    from livecomposer.judge.run import at_tempo, whole_bars
    from livecomposer.app.session import load

    assert whole_bars(8, 4) == 8 and whole_bars(8, 3) == 9 and whole_bars(8, 2) == 8 and whole_bars(1, 3) == 3
    preset, _ = load(m.__file__.rsplit("/livecomposer/", 1)[0] + "/presets/duet.yaml")
    clock = at_tempo(preset, 132.0, 3.0).clock
    assert (clock.bpm, clock.beats_per_bar, clock.source) == (132.0, 3, "internal")
    assert at_tempo(preset, 90.0, 3.5).clock.beats_per_bar == preset.clock.beats_per_bar  # 7/8: keep the preset's
