"""effnet_app: classify images with EfficientNet and teach it your own classes."""

__version__ = "0.1.0"
APP_NAME = "effnet_app"
APP_DISPLAY_NAME = "EfficientNet Classifier"
ORG_NAME = "effnet_app"
