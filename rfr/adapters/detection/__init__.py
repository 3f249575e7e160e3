"""Face detectors: implementations of the ``FaceDetector`` port."""
