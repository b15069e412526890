"""The search loop: configured runs, trials in-process or on Ray, comparisons."""
