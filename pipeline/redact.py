"""Credentials never reach a log line or a status page: `mask_url` hides them in any text; and
no file name breaks a one-line message: `printable` shows any name on one line.

    rtsp://admin:hunter2@cam/stream          -> rtsp://admin:***@cam/stream
    rtsp://secrettoken@cam/stream            -> rtsp://***@cam/stream
    http://cam/video.mjpg?user=a&token=abc   -> http://cam/video.mjpg?user=a&token=***
"""

from __future__ import annotations

import re

MASK = "***"

# The authority part of a URL up to its LAST '@' (greedy), so an unencoded '@' inside a password
# (a common mistake that FFmpeg still accepts) is masked whole instead of leaking its tail.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s?#'\"<>]*)@")

# Query/fragment parameters whose value is a secret: any name ending in one of these words
# (token, access_token, api_key, password, ...). Masking one harmless value too many is fine.
_SECRET_PARAM = re.compile(
    r"(?P<name>[?&;#][\w.\-]*(?:token|password|passwd|pwd|pw|pass|key|secret|auth|signature|sig|credential)=)"
    r"(?P<value>[^&;#\s'\"<>]*)",
    re.IGNORECASE,
)


def _mask_userinfo(m: re.Match[str]) -> str:
    userinfo = m.group("userinfo")
    if not userinfo:
        return m.group(0)
    user, colon, _password = userinfo.partition(":")
    # Without a colon the whole userinfo may be a token (rtsp://TOKEN@host): hide it all.
    kept = f"{user}:{MASK}" if colon else MASK
    return f"{m.group('scheme')}{kept}@"


def mask_url(text: str) -> str:
    """`text` with the password (or lone userinfo token) of every URL and every secret-looking
    query parameter value replaced by ***. Text without URLs comes back unchanged."""
    if "@" not in text and "=" not in text:
        return text  # fast path: most log lines
    text = _USERINFO.sub(_mask_userinfo, text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group('name')}{MASK}" if m.group("value") else m.group(0), text)


def printable(text: str) -> str:
    """`text` on one line, whatever bytes a file name holds: control characters (a newline in a
    name) escaped as \\n, \\t, \\x1b; bytes that are not UTF-8 (os.fsdecode's surrogates) as \\xff."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # a raw byte of a non-UTF-8 name
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)
