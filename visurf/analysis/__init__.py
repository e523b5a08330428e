"""Reading finished runs: question-by-question comparisons (`compare`) and sweep reports
(`report`), for the commands and for notebooks."""
