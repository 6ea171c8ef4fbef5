"""SignSeek demo: the FastAPI service (REST, WebSocket, Socket.IO) with the Gradio UI mounted on it."""
