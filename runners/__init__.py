"""Runners that measure real models on each hardware platform and write into the benchmark database.

runners.engine holds the one engine the three scripts share; runners.models the model registry;
runners.measure timing, statistics and environment capture; runners.backends one module per platform.
"""
