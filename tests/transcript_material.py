"""Spoken material for the retrieval eval: six producers talking through their process, as
yt-dlp downloads (`Title [ID].info.json` beside `Title [ID].en.vtt` in YouTube's rolling
auto-caption format, written by bench/ytdlp_material.py's writer: no punctuation, no
capitals, inline word timings, `[Music]` at the start).

What they say is loose, spoken language (fillers, "you know", "kind of", numbers said as
people say them) and holds specifics the bundled pages do not (a duvet over the mic stand,
snares nudged 20 ms late, the kick sent to a 100 % wet reverb), so tests/data/
transcript_eval.json's queries have one right page: the video's. Four videos have
chapters (one section each), two do not (the reader cuts topic-sized sections).

`write_transcripts(folder)` writes the twelve files and returns the folder.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import ytdlp_material  # noqa: E402

# (video id, title, channel, [(chapter title or None, spoken text)])
VIDEOS: list[tuple[str, str, str, list[tuple[str | None, str]]]] = [
    ("bRmV0cals01", "Recording and Mixing Vocals in a Bedroom", "Attic Sessions", [
        ("Intro", """
hey everybody welcome back to the attic. so today it's vocals, recording them and mixing
them when all you've got is a bedroom and a cheap condenser. let's get into it.
"""),
        ("Recording the take", """
okay so first thing, the room. your bedroom is a box with parallel walls and it rings, you
can hear it on every word. what i do is i throw a heavy duvet over the mic stand, like a
little tent behind the singer, and honestly that kills most of the reflections. stand the
singer about a hand's width from the pop filter, not closer, otherwise every p pops and
the low end gets boomy from the proximity thing. and do like four or five takes and comp
the best lines together later, don't try to get one perfect take.
"""),
        ("Cleaning it up", """
right so before any plugins, clean the track. the breaths, i don't delete them, that
sounds robotic, like nobody's breathing. i just grab the clip gain and pull every breath
down by about six db so they're there but they're not in your face. then i cut out the
noise between the phrases, the chair creaking and the headphone bleed, with little fades
so nothing clicks.
"""),
        ("Compression", """
now the compression. i use two compressors in a row, not one doing all the work. the
first one is fast, quick attack, ratio around four to one, and it's only there to grab
the loud peaks when the singer belts. then the second one is slow and gentle, two to one,
maybe two or three db of gain reduction, and that one kind of glues the performance
together so it sits steady on top of the beat.
"""),
        ("Space", """
last thing, space. everybody reaches for a big reverb and the vocal goes way back in the
mix. what i like instead is a slapback delay, one repeat around ninety milliseconds, low
in level, and it makes the voice sound bigger but still right up front and intimate. if
you want reverb too keep it short and put it on a send.
"""),
    ]),
    ("dUsTyDrums2", "My Lofi Hip Hop Drum Process", "Dusty Tapes", [
        ("Intro", """
what's going on it's dusty tapes. people keep asking how my drums get that lazy head
nod feel so i'm just going to show you my whole process start to finish.
"""),
        ("Finding the groove", """
so step one, i turn the quantize off. like completely off. i play the pattern in on the
pads and then i go in and drag every snare a little bit late, around twenty milliseconds
behind the grid. that's what gives it that drunk, sleepy, behind the beat feeling that
you hear on all the old records. if the snare is dead on the grid it sounds like a drum
machine demo.
"""),
        ("Swing and velocity", """
then the hats. i put swing on just the hi hats, something like fifty six percent, not
on the kick and snare. and the velocities, i randomize them so no two hits are the same
loudness, maybe plus or minus fifteen, because a real drummer never hits the same twice.
ghost notes on the snare really quiet in between helps too.
"""),
        ("Dirt and tape", """
and now the dirt. i put the whole drum bus through a cassette tape plugin and turn up
the wow and flutter just a touch so it wobbles, then a low pass around eight k to take
the shine off the cymbals. and the vinyl crackle layer, i duck that with the kick using
sidechain so the crackle kind of breathes with the beat instead of sitting there like a
blanket of noise.
"""),
    ]),
    ("pXlFoley003", "Game Audio Footsteps and Menu Sounds", "Pixel Foley", [
        (None, """
hi, pixel foley here. today i want to talk about game audio, specifically footsteps and
the little menu sounds, because these are the sounds the player hears thousands of times.
so footsteps. i record them myself. i've got a baking tray filled with gravel and another
one with dry leaves and i just walk in place on them with different shoes. the big thing
is you need lots of variations. if the game plays the same footstep sample every step it
sounds like a machine gun, really mechanical. so i record at least six to eight takes for
each surface and the engine picks one at random every step. on top of that i randomize
the pitch a little, about two semitones up or down, and the volume a few db, and
suddenly it feels like a real person walking.
now menu sounds, the clicks and confirms and back buttons. my favourite source is
literally a ballpoint pen click recorded really close, layered with a tiny sine blip
from a synth, pitched up. the rule i have for interface sounds is keep them short, under
about a hundred and fifty milliseconds, so they never get in the way when someone's
clicking through menus fast. and keep all of them at the same loudness, nothing worse
than one button being way louder than the rest. the confirm sound goes up in pitch, the
back or cancel sound goes down, so players feel the direction without thinking about it.
"""),
    ]),
    ("mUdDyM1x004", "Fixing a Muddy Mix Live", "Mix Rescue Live", [
        ("The problem", """
alright we're live. so this mix got sent in and the complaint is it sounds muddy and
cloudy, like there's a blanket over the speakers, and everything is loud but nothing is
clear. this is the most common problem i get sent, by far.
"""),
        ("Low mids", """
so the mud lives between roughly two hundred fifty and four hundred hertz. every
instrument has energy there, guitars, pads, keys, the vocal, and when you stack them all
that area just piles up. so i sweep a narrow boost on the pad, find where it's boxy, and
cut it by like three or four db. same on the guitars. and then i put a high pass on
everything that isn't the kick or the bass, somewhere around a hundred to a hundred fifty
hertz, because you don't need the low stuff from a shaker or a vocal.
"""),
        ("Reverb mud", """
the other thing nobody checks is the reverb return. a long reverb full of low end is
mud city. i put a high pass on the reverb return itself at around three hundred hertz and
a low pass around six k and straight away the mix opens up and the vocal comes forward.
"""),
        ("Arrangement", """
and honestly half of the mud here isn't an eq problem, it's the arrangement. the pad,
the piano and the guitar are all playing chords in the same octave. so instead of eqing
them to death i moved the pad up an octave and made the piano play fewer notes, and it's
cleaner than any eq move could get it.
"""),
    ]),
    ("wArEhOuSe05", "Rumbling Techno Bass From the Kick", "Warehouse Weekly", [
        ("Intro", """
yo it's warehouse weekly. today that big rolling rumble you hear under every warehouse
techno track, the one that's kind of felt more than heard. let's build it.
"""),
        ("The reverb send", """
so here's the trick, the rumble comes from the kick itself. i make a send from the kick
channel to a return track with a big reverb on it, long decay like six or seven seconds,
a hundred percent wet. on its own it's just a wash, a big cloudy tail. then right after
the reverb i put a distortion, quite hard, so the tail gets thick and gritty.
"""),
        ("Filtering", """
next i filter it. a low pass on the return at around two hundred hertz so only the deep
part of the tail is left, and a high pass at about forty so it doesn't eat your
headroom with sub you can't even hear. and keep it mono, the rumble has to be mono or
it falls apart on a club system.
"""),
        ("Sidechain", """
last, the pumping. i put a compressor on the rumble return and key it from the kick, so
every time the kick hits the rumble ducks out of the way and then swells back in between
the hits. that's where the rolling movement comes from, and the kick stays punchy because
the two never fight.
"""),
    ]),
    ("fInIsHiT006", "How I Actually Finish Tracks", "Studio Diaries", [
        (None, """
welcome to studio diaries. this one's a bit different, it's not a sound design thing, it's
about finishing music, because i had a hard drive full of eight bar loops and nothing
ever got done. so here's what changed it for me.
the first thing is a timer. when i start an idea i give myself twenty minutes to get the
main loop, and when the timer goes off i have to start laying it out into a full song,
even if the loop isn't perfect. otherwise you just polish the same eight bars forever.
the second thing is i bounce stuff to audio. once the synth sound is decent i render it
to audio and delete the instrument, so i can't go back and tweak the patch for three
hours. it forces you to commit and move on.
third, my ears. after an hour or so you stop hearing the mix properly, everything sounds
fine and it isn't. so i take a break every hour, ten minutes, no music, and i never make
final decisions at the end of a long session. and i check the track on my phone speaker
and in the car before i call it done, because that's where people actually listen.
and the last thing, i set a deadline and send it to a friend. once someone else has
heard it it's real and i can't keep fiddling with it.
"""),
    ]),
]


def _sentences(text: str) -> list[list[str]]:
    """Spoken words, sentence by sentence, as auto-captions give them: no punctuation
    but apostrophes, lower case."""
    out = []
    for part in re.split(r"[.!?]", text):
        words = re.sub(r"[^a-z0-9' ]", " ", part.lower()).split()
        if words:
            out.append(words)
    return out


def build(index: int) -> ytdlp_material.Video:
    vid, title, channel, parts = VIDEOS[index]
    rng = random.Random(index)
    sentences: list[list[str]] = []
    times: list[list[float]] = []
    chapters = []
    t = 4.0  # [Music] before the first word, as YouTube captions it
    for chapter, text in parts:
        if chapter is not None:
            chapters.append({"start_time": 0.0 if not chapters else round(t - 0.4, 3),
                             "title": chapter})
        for s in _sentences(text):
            row = []
            for _ in s:
                row.append(round(t, 3))
                t += rng.uniform(0.18, 0.42)
            sentences.append(s)
            times.append(row)
            t += rng.uniform(0.8, 1.6)
    duration = float(int(t + 3))
    for k, c in enumerate(chapters):
        c["end_time"] = chapters[k + 1]["start_time"] if k + 1 < len(chapters) else duration
    return ytdlp_material.Video(
        vid, title, channel, "UC" + (vid * 3)[:22], "Mixing", sentences, times, duration,
        chapters or None, [(0.0, 4.0)])


def write_transcripts(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(VIDEOS)):
        video = build(i)
        info = ytdlp_material.info_json(video)
        # the bulky lists that make a real info.json large are not what this eval is about
        info["formats"] = info["formats"][:2]
        info["automatic_captions"] = {}
        (folder / f"{video.stem}.info.json").write_text(json.dumps(info, ensure_ascii=False),
                                                        encoding="utf-8")
        (folder / f"{video.stem}.en.vtt").write_text(
            ytdlp_material.auto_caption_vtt(video, seed=i), encoding="utf-8")
    return folder
