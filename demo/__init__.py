"""`mi-harness demo`: the whole pipeline in one command, chaining the three packages through their files.

attack writes checkpoints and a bundle, survey_app makes a study of the bundle and serves it, the simulated
panel answers it over HTTP, and analysis reads the database and the machine evaluator's CSV. This package
is the only one that knows all three; none of them imports it.
"""
