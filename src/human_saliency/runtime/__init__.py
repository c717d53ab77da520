"""Where computations run: the device, and multi-process runs under torchrun."""
