"""`python -m audiocaps_tf.data {download,prepare,stats,demo}`: the data commands."""

import argparse
import importlib
import sys

# Each command module has HELP, add_arguments(parser) and run(args) -> exit code.
COMMANDS = {
    "download": "audiocaps_tf.data.download",
    "prepare": "audiocaps_tf.data.prepare",
    "stats": "audiocaps_tf.data.stats",
    "demo": "audiocaps_tf.data.demo",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m audiocaps_tf.data", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = subparsers.add_parser(name, help=module.HELP, description=module.__doc__,
                                        formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
