"""Outputs: what the sink does with each labeled frame, in order.

* `label`: a batch video's NAME.jsonl, NAME.segments.json/.csv and annotated NAME.mp4;
* `live`: a live stream's page, metrics, JSONL, recording and window;
* the pieces they share: `records` (the per-frame record), `smoothing` (temporal smoothing,
  segments, summary), `writers` (.part-then-rename files, H.264), `overlay`, `display`.

A job hands the sink an OutputsFactory (stages.sink) that makes each stream's StreamOutputs.
"""
