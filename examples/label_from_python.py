"""Label a folder from Python and print what happens in each video and when: the API in a page.

    python examples/label_from_python.py VIDEO_OR_FOLDER... [--out OUT] [--backend cpu|sim|alveo]

The same job as `vidpipe label` (graph, manifest, outputs, report). Results come back in memory:
frames as they are labeled (`for r in run`), then the summary (`run.summary()`); with --out the
usual files are written too. Written as a notebook would be: each step is a cell.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import vidpipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--out", help="also write the outputs and the report here")
    parser.add_argument("--backend", default="cpu")
    args = parser.parse_args()

    # cell 1: start the job; frames' labels arrive as they are produced
    run = vidpipe.label(args.inputs, out=args.out, backend=args.backend)
    top1: Counter[tuple[str, str]] = Counter()
    for result in run:
        top1[(result.video, result.label)] += 1

    # cell 2: the summary, in memory (summary.to_pandas() with pandas installed)
    summary = run.summary()
    print(f"{'video':<16} {'status':<8} {'frames':>6}  label (share of time)")
    for video in summary.videos:
        label = f"{video.label} ({video.top[0][1]:.0%})" if video.top else "-"
        status = video.status if video.ok else f"{video.status}: {video.error}"
        print(f"{video.video:<16} {status:<8} {video.frames:>6}  {label}")
        for seg in video.segments:
            print(f"  {seg.start_s:6.2f} - {seg.end_s:6.2f} s  {seg.name} ({seg.mean_score:.2f})")

    # cell 3: per-frame counts, from the frames seen in cell 1
    for (name, label), frames in top1.most_common(3):
        print(f"{name}: {label} on {frames} frames")
    return summary.exit_code  # 0 ok, 1 some video failed


if __name__ == "__main__":
    sys.exit(main())
