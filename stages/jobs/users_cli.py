"""`vidpipe users`: the people who may sign in to a live run's page and API.

    vidpipe users add alice --role admin -o results/     asks for the password twice
    vidpipe users passwd alice -o results/               a new password (her open sessions end)
    vidpipe users list -o results/                       names, roles, when added
    vidpipe users remove bob -c live.yaml                the users file of that config
    echo "$PW" | vidpipe users add ci --role viewer --password-stdin --users /etc/vidpipe/users.json

The file is the live run's: --users PATH, else live.users_file of -c CONFIG, else OUT/users.json
(OUT: -o, or the config's output.dir). The server reads changes at once: no restart needed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from vidpipe.stages.config import JobConfig, load_job, override
from vidpipe.stages.jobs.base import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from vidpipe.stages.web.access import users_path
from vidpipe.stages.web.users import ROLES, UsersError, UserStore


def add_users_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    users = sub.add_parser("users", help="who may sign in to the live page and API (add, passwd, list, remove)",
                           description=__doc__.split("\n\n")[0] if __doc__ else None)
    actions = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer",
                     help="admin: may add and remove streams (default viewer)")
    passwd = actions.add_parser("passwd", help="set a user's password (their open sessions end)")
    passwd.add_argument("name")
    listing = actions.add_parser("list", help="the users, their roles and when they were added")
    listing.add_argument("--json", action="store_true", help="as JSON")
    remove = actions.add_parser("remove", help="remove a user (their open sessions end)")
    remove.add_argument("name")
    for p in (add, passwd, listing, remove):
        p.add_argument("--users", type=Path, metavar="FILE", help="the users file (default: OUT/users.json)")
        p.add_argument("-o", "--out", help="the live run's output folder (default results/)")
        p.add_argument("-c", "--config", dest="config_file", type=Path, metavar="FILE",
                       help="a live config: its live.users_file or output.dir")
    for p in (add, passwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    return users


def run_users(args: argparse.Namespace) -> int:
    store = UserStore(_path(args))
    try:
        if args.action == "list":
            return _list(store, args.json)
        if args.action == "remove":
            store.remove(args.name)
            print(f"removed {args.name} from {store.path}")
            return EXIT_OK
        password = _password(args.password_stdin, args.name)
        if args.action == "add":
            user = store.set(args.name, password, args.role, new=True)
            print(f"added {user.name} ({user.role}) to {store.path}")
        else:
            store.set(args.name, password)
            print(f"changed the password of {args.name} in {store.path}")
        return EXIT_OK
    except UsersError as exc:
        print(f"vidpipe users: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except _NoPassword as exc:
        print(f"vidpipe users: {exc}", file=sys.stderr)
        return EXIT_USAGE


class _NoPassword(Exception):
    pass


def _path(args: argparse.Namespace) -> Path:
    if args.users is not None:
        return Path(args.users)
    job = load_job(args.config_file) if args.config_file is not None else JobConfig()
    if args.out is not None:
        job = override(job, {"output": {"dir": args.out}}, "command line")
    return users_path(job.live, job.output.dir)


def _password(from_stdin: bool, name: str) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise _NoPassword("--password-stdin: standard input gave no password")
        return line
    if not sys.stdin.isatty():
        raise _NoPassword("no terminal to ask for the password: give it on standard input with --password-stdin")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise _NoPassword("the two passwords differ: nothing changed")
    return first


def _list(store: UserStore, as_json: bool) -> int:
    users = store.users()
    if as_json:
        print(json.dumps([{"name": u.name, "role": u.role, "created": u.created} for u in users], indent=1))
    elif not users:
        print(f"no users in {store.path} (add one: vidpipe users add NAME --role admin)")
    else:
        width = max(len(u.name) for u in users)
        print(f"{'NAME':<{width}}  ROLE    ADDED")
        for u in users:
            print(f"{u.name:<{width}}  {u.role:<6}  {u.created}")
    return EXIT_OK
