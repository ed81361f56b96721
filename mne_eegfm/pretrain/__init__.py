"""Self-supervised pretraining: objectives, data pipeline and trainer."""
