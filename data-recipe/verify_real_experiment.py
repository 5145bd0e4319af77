#!/usr/bin/env python
"""Dual verification on real LLM candidate pools (see xcoder/synth/verify/real_experiment.py).

    .venv/bin/python data-recipe/verify_real_experiment.py [--n 4,8,16] [--candidates 48]
"""

import sys

from xcoder.synth.verify.real_experiment import main

if __name__ == "__main__":
    sys.exit(main())
