"""Property tests of issue 9: stateful models of the queues and the lifecycle, and the input fuzzers."""
