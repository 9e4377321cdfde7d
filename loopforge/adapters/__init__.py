"""Optional storage adapters (0.1.0 import paths). The stores now live in ``loopforge.repository``."""
