"""``python -m transferlib try PATH``: :func:`~transferlib.tryout.try_strategies` from a terminal.

    $ python -m transferlib try my_photos --minutes 5 --out my_model
    $ python -m transferlib try reviews.csv --out review_model       # a CSV: columns text and label
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transferlib", description="The course's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("try", help="audit photos or texts, try strategies, pick one, hand it over",
                              description="Audit a folder of photos (one sub-folder per class) or a CSV of "
                              "texts (columns text and label), try the "
                              "strategies that fit in --minutes, pick the cheapest that is not worse than the "
                              "best by more than --margin, and write the model, report.html, MODEL_CARD.md and app.py "
                              "(python OUT/app.py: the model on a web page at http://127.0.0.1:7860).")
    run.add_argument("path", help="a folder with one sub-folder of photos per class, or a CSV file of texts")
    run.add_argument("--minutes", type=float, default=5.0, help="the time you can wait (default 5)")
    run.add_argument("--out", default="try_out", help="where to write the files (default try_out/)")
    run.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    run.add_argument("--margin", type=float, default=0.03,
                     help="accuracy you would give up for a cheaper model, declared now (default 0.03)")
    run.add_argument("--splits", type=int, default=5,
                     help="splits into folds that test every item, as time allows (default 5)")
    args = parser.parse_args(argv)
    from .tryout import try_strategies

    try:
        report = try_strategies(args.path, minutes=args.minutes, out=args.out, device=args.device,
                                margin=args.margin, splits=args.splits)
    except (ValueError, FileNotFoundError) as err:
        print(f"python -m transferlib try: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
