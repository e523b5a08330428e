"""Models: the tiny local Qwen2.5-VL builder, the processing path, loading and adapters."""
