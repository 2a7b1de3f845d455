"""`labkit images build|list`: the local image set for machines without a registry."""

from __future__ import annotations

import argparse
import json

from labkit.lab import engine, images


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labkit images", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build labkit/debian, labkit/mariadb, labkit/redis, labkit/lab (cached)")
    b.add_argument("--force", action="store_true", help="rebuild even when the inputs did not change")
    sub.add_parser("list", help="which images of the chosen set (LABKIT_IMAGES) are on the engine")
    args = p.parse_args(argv)
    if args.action == "build":
        running_before = engine.find() is not None
        try:
            result = images.build(say=lambda msg: print(f"[images] {msg}", flush=True), force=args.force)
        finally:
            if not running_before:  # labkit's own dockerd, started for this build: stop it (images stay)
                engine.stop_managed()
        print(json.dumps(result, indent=2))
        return 0
    found = images.present()
    print(json.dumps({"set": images.image_set(), "images": found}, indent=2))
    return 0
