"""Live rooms on the server: persistence of room events, the room service and the WebSocket endpoint."""
