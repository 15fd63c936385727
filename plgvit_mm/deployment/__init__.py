"""Deployment: ONNX export with standard operators only, and ONNX Runtime inference.

Needs the ``deploy`` extra (onnx, onnxruntime, onnxscript, onnxslim). Entry points:
tools/deployment/export_onnx.py and tools/deployment/ort_inference.py (docs/deployment.md).
"""
