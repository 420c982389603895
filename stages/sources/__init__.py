"""Sources: where frames come from. Each source is a stage process that writes frames into the
frame ring and sends FrameRefs, framed by StreamStart / StreamEnd.

* `files`: video files decoded in order (block policy: lossless), found in folders, probed first;
* `live`, `capture`, `readers`: cameras, network streams, image folders and real-time files
  (latest policy: bounded latency), with a reconnecting capture thread per source;
* `naming`: the stream name of every input.
"""
