"""Fine-tuning servers' models in one background thread: the service, its jobs and scheduler."""
