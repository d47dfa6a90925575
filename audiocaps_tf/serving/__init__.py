"""Serving the exported SavedModels: a TF-Serving-compatible development server and a client.

TensorFlow Serving (the `tensorflow/serving` Docker image) is the production server. `dev_server` speaks the
same gRPC and REST APIs for tests and machines without Docker; `client` captions audio files through either
server. Nothing is imported here, so `import audiocaps_tf.serving` stays cheap.
"""
