"""Integrations: ailedger where ML teams already work.

* :mod:`ailedger.integrations.mlflow` -- a model version registered in MLflow gets a signed
  ``model.register`` entry for exactly its artifact bytes, with lineage from its run; the version
  carries the entry's index and manifest root as tags (docs/mlflow.md).
* :mod:`ailedger.integrations.hf` -- a Hugging Face model card (huggingface_hub's ModelCard format)
  that says how to verify the model offline, and the offline proof file it ships with
  (docs/huggingface.md).  ``dataset commit`` reads ``datasets`` save_to_disk folders itself
  (:func:`ailedger.provenance.datasets.hf_arrow_files`).

No entry type of its own: both write ``model.register`` through provenance's public API.
"""

from ailedger.integrations.hf import MODEL_PROOF, model_card, model_proof, verify_folder_offline
from ailedger.integrations.mlflow import register_model_hook, register_version, server_ok

__all__ = ["MODEL_PROOF", "model_card", "model_proof", "register_model_hook", "register_version", "server_ok",
           "verify_folder_offline"]
