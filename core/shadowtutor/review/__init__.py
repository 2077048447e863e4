"""Human review: the queue and claims, sampling pairs into it, tags, progress, agreement."""
