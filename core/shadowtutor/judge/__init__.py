"""The LLM judge: versioned prompt templates, a background runner that scores sampled pairs in
both answer orders, its own table (never mixed with human reviews), and calibration against
your reviewers."""
