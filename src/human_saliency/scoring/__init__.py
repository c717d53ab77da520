"""Scoring: saliency metrics, detection AP, per-detector scores, the tables and figures."""
