"""Attribute inference against decision trees (sections 4 and 6 of Fredrikson, Jha and Ristenpart 2015): the
lifestyle surveys, the tree model form the attacks read, the estimators and their baselines."""
