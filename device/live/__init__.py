"""Live reading: camera sources (picamera2, OpenCV, video, folder), the live loop that reads
them, `serve` (HTTP API and page in static/) and MQTT with Home Assistant discovery."""
