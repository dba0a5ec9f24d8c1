"""The third stage: answers in, identification accuracy per model and countermeasure out."""
