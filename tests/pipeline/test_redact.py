"""mask_url hides URL passwords, lone userinfo tokens and secret query parameters anywhere in text."""

from __future__ import annotations

import pytest

from vidpipe.pipeline.redact import mask_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:hunter2@cam.local:554/stream1", "rtsp://admin:***@cam.local:554/stream1"),
        ("rtsp://TOKEN123@cam/x", "rtsp://***@cam/x"),
        ("https://u:p@host/path?q=1", "https://u:***@host/path?q=1"),
        ("http://u:p%40ss@host/", "http://u:***@host/"),
        # an unencoded '@' in the password: everything up to the host's '@' is hidden
        ("rtsp://admin:p@ss@10.1.2.3/live", "rtsp://admin:***@10.1.2.3/live"),
        ("http://cam/video.mjpg?user=a&token=abc123&fps=5", "http://cam/video.mjpg?user=a&token=***&fps=5"),
        ("http://cam/x?password=s3&key=k&api_key=Z&access_token=T",
         "http://cam/x?password=***&key=***&api_key=***&access_token=***"),
        ("http://cam/x?Password=S&PWD=x", "http://cam/x?Password=***&PWD=***"),
        ("http://cam/x#token=abc", "http://cam/x#token=***"),
        ("source 'rtsp://a:b@h/s' failed", "source 'rtsp://a:***@h/s' failed"),
        ("two: rtsp://a:b@h1/s and http://c:d@h2/t", "two: rtsp://a:***@h1/s and http://c:***@h2/t"),
    ],
)
def test_masks_secrets(text: str, expected: str) -> None:
    assert mask_url(text) == expected


@pytest.mark.parametrize(
    "text",
    ["plain log line", "mail me at user@example.com", "x=1 y=2", "http://host/path?fps=25&user=alice",
     "rtsp://cam.local/stream", "/dev/video0", "", "http://host/?token="],
)
def test_leaves_harmless_text_alone(text: str) -> None:
    assert mask_url(text) == text


def test_idempotent() -> None:
    once = mask_url("rtsp://a:b@h/s?token=t")
    assert mask_url(once) == once
