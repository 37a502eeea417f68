"""What runs on a remote team's host: one fixed POSIX ``sh`` script, all there is on the remote command line.

The script reads its start-up lines from stdin (written by ``ssh_relay``): ``e`` lines are exported (the
environment Iris gives the team; never on a command line, where other users of the host could read them),
then ``d`` the team's folder, ``c`` the Claude Code CLI, ``s`` the session id and ``a`` each argument, and
``.`` ends them. ``read -r`` takes one line at a time without reading past it, so what follows on stdin is
the SDK's own protocol, untouched.

**Resume, decided where the transcript is.** Iris always asks for ``--session-id=<id>``; when the remote
Claude Code already has ``<config dir>/projects/*/<id>.jsonl`` (``$CLAUDE_CONFIG_DIR``, else
``$HOME/.claude``, after the team's environment is applied), the script swaps it for ``--resume=<id>``. So
a remote team keeps its conversation across sleep and wake with no extra round trip.

**Nothing left behind.** Claude Code runs in the background with its stdin from a FIFO that ``cat`` fills
from the script's stdin. When that stdin ends (the SDK closed it for a graceful stop, or the connection
dropped: Iris stopped, was killed, or the link died), Claude Code normally exits at once; if it is still
there ``GRACE_S`` later (mid-turn it is: it goes on with the turn, the SSH tests showed), it gets SIGTERM,
and SIGKILL 3 s after that. When it has exited, the script ends the watcher and signals its own process
group (sshd makes each session a group of its own, led by the script; a script that leads no group signals
nothing), which ends what Claude Code left there. Claude Code runs its tools in process groups of their own,
so that signal does not reach a tool's background process: everything the script started carries
``RUN_ENV`` (unique to the run: its temporary folder) in its environment, and where the host has ``/proc``
every process still carrying it is killed last (the same marking Iris's own sweep uses here, which cannot see
the host; a tool process that clears its environment escapes it). Only POSIX ``sh``, ``grep`` and coreutils
(``cat``, ``mktemp``, ``mkfifo``, ``sleep``, ``rm``) are used.

The script holds no single quote and no backslash, so every POSIX login shell (and fish) passes it to
``sh -c`` unchanged.
"""

from __future__ import annotations

import shlex

__all__ = ["GRACE_S", "REMOTE_SCRIPT", "RUN_ENV", "remote_command"]

GRACE_S = 5
RUN_ENV = "IRIS_REMOTE_RUN"
"""What marks every process a run of the script started (Claude Code, its tools): killed when it ends."""
"""Seconds Claude Code may take to exit once its stdin has ended before it is terminated."""

REMOTE_SCRIPT = f"""
say() {{ printf "%s %s" "iris launcher:" "$*" >&2; echo >&2; }}
die() {{ say "$*"; exit 97; }}
dec() {{
  case $1 in
  %*) v=$(printf "%bx" "${{1#?}}") || die "cannot decode a start-up line"; v=${{v%x}} ;;
  *) v=${{1#?}} ;;
  esac
}}
IFS= read -r l || die "no start-up lines from Iris"
[ "$l" = "iris-ssh 1" ] || die "unexpected start-up line from Iris"
dir= cli= sid= resume=
set --
while :; do
  IFS= read -r l || die "the start-up lines from Iris ended early"
  t=${{l%"${{l#?}}"}}
  l=${{l#?}}
  case $t in
  .) break ;;
  e) dec "$l"
     case ${{v%%=*}} in ""|[!A-Za-z_]*|*[!A-Za-z0-9_]*) die "bad variable name from Iris" ;; esac
     export "$v" ;;
  d) dec "$l"; dir=$v ;;
  c) dec "$l"; cli=$v ;;
  s) dec "$l"; sid=$v
     for f in "${{CLAUDE_CONFIG_DIR:-${{HOME:-}}/.claude}}"/projects/*/"$sid".jsonl; do
       [ -f "$f" ] && resume=1
     done ;;
  a) dec "$l"
     if [ -n "$resume" ] && [ "$v" = "--session-id=$sid" ]; then v="--resume=$sid"; fi
     set -- "$@" "$v" ;;
  *) die "unknown start-up line from Iris" ;;
  esac
done
[ -n "$dir" ] && [ -n "$cli" ] || die "incomplete start-up lines from Iris"
cd "$dir" || die "cannot enter the team folder $dir"
command -v "$cli" >/dev/null 2>&1 || die "Claude Code not found: $cli"
tmp=$(mktemp -d) || die "mktemp -d failed"
mkfifo "$tmp/stdin" || die "mkfifo failed in $tmp"
export {RUN_ENV}="$tmp"
exec 3<&0
"$cli" "$@" <"$tmp/stdin" 3<&- &
cpid=$!
{{
  cat <&3 >"$tmp/stdin"
  sleep {GRACE_S}
  kill -s TERM "$cpid"
  sleep 3
  kill -s KILL "$cpid"
}} >/dev/null 2>&1 &
gpid=$!
exec 3<&-
wait "$cpid"
rc=$?
kill -s TERM "$gpid" 2>/dev/null
rm -rf "$tmp"
trap "" TERM
kill -s TERM -- -$$ 2>/dev/null
unset {RUN_ENV}
grep -lF "{RUN_ENV}=$tmp" /proc/[0-9]*/environ 2>/dev/null | while IFS= read -r f; do
  f=${{f#/proc/}}
  kill -s KILL "${{f%/environ}}" 2>/dev/null
done
exit "$rc"
"""
"""The script the remote ``sh`` runs; see the module's docstring."""

assert "'" not in REMOTE_SCRIPT and "\\" not in REMOTE_SCRIPT


def remote_command() -> str:
    """Return the command ssh asks the remote login shell to run: the fixed script under ``sh -c``.

    It is the same for every team and process, so nothing of a team (path, CLI, arguments, secrets) reaches
    the remote login shell's parser or the host's process list.
    """
    return f"exec sh -c {shlex.quote(REMOTE_SCRIPT)} iris-claude"
