"""SynthSmith stage `tests`: generates test inputs for each task (samples, prompted inputs, generator
programs, type-aware mutants, validators). Named `testgen` so it is not mistaken for the test suite."""
