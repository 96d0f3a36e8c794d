import os
import socket

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    # The container runtime sets HOSTNAME to the container's host name.
    hostname = os.environ.get("HOSTNAME") or socket.gethostname()
    return "Hello, my first docker images! " + hostname
