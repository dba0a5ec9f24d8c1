"""mi-harness's torch-free core: what the attack, the survey and the analysis share.

Nothing here imports torch or another stage's package, so the survey server and the analysis can use it
without the attack stack installed (DESIGN.md, "The pipeline").
"""
