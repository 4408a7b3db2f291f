"""The explanation service: the Diagnoser over HTTP (``crampdx serve``) and CDS Hooks."""
