"""Holds GPU memory (GiB given) until killed; writes a ready file once it has it."""

import pathlib
import sys
import time

import torch

held = torch.empty(int(float(sys.argv[1]) * 2**30), dtype=torch.uint8, device="cuda")
pathlib.Path(sys.argv[2]).write_text("ready\n")
time.sleep(900)
