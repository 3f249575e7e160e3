"""Face embedder adapters (``FaceEmbedder``): dlib's ResNet by default, user ONNX models beside it."""
