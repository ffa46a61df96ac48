"""The Qt-free engine: every long job is a cancellable generator (see DESIGN.md)."""
