"""The domain: video in, labels out. The rooms follow the flow of a frame:

    sources/   files, cameras, streams -> frame ring + FrameRefs
    preprocess.py, infer.py, sink.py   the core stage processes (resize, batch + accelerator,
               reorder), with the descriptors and events they exchange and the job config
    outputs/   what the sink writes: JSONL, segments, annotated video, overlay, live outputs
    web/       the live view and its metrics over HTTP
    jobs/      the Job protocol, the graph, the label and live jobs, the CLI

Imports only run down: jobs -> outputs -> web -> the core modules; sources -> the core modules;
the core -> pipeline, hw. No room imports a room above it (tests/test_layout.py checks it).
"""
