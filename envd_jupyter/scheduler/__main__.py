"""``python -m envd_jupyter.scheduler``: check a config, print its effective form, or the schema.

    python -m envd_jupyter.scheduler check scheduler.yaml   # effective config, or "path: error"
    python -m envd_jupyter.scheduler schema                 # JSON Schema of the config file
    python -m envd_jupyter.scheduler plugins                # registered plugin types by kind
"""

from __future__ import annotations

import argparse
import json
import sys

from ._config import ConfigError, config_json_schema, load_config
from ._registry import plugin_types


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m envd_jupyter.scheduler", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a config file and print it with defaults filled in")
    check.add_argument("path")
    sub.add_parser("schema", help="print the config's JSON Schema")
    sub.add_parser("plugins", help="list registered plugin types")
    args = parser.parse_args(argv)
    if args.command == "schema":
        print(json.dumps(config_json_schema(), indent=2))
    elif args.command == "plugins":
        for type_name, cls in plugin_types().items():
            print(f"{cls.kind:8s} {type_name}")
    else:
        try:
            print(load_config(args.path).to_yaml(), end="")
        except ConfigError as exc:  # already names the file
            print(exc, file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"{args.path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
