#!/usr/bin/env python3
"""The Python server a team would deploy for a SavedModel: a Starlette app
under uvicorn (uvloop, httptools), one worker process per core, each holding
the model's serving_default signature. The baseline of `make bench`'s serving
benchmark; it answers the subset of TF Serving's REST API the benchmark uses
(POST /v1/models/NAME:predict with {"instances": [...]}).

Each worker runs TensorFlow on one intra-op and one inter-op thread, so the
workers together use the cores once instead of each spreading over all of
them. JSON goes through orjson.

Usage: python scripts/serve_uvicorn.py MODEL_DIR PORT [--workers N]   (binds 127.0.0.1)
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL_ENV = "KERASGO_UVICORN_MODEL"


def create_app():
    """The Starlette app of one worker (uvicorn's factory, called in each)."""
    import numpy as np
    import orjson
    import tensorflow as tf
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    serve = tf.saved_model.load(os.environ[MODEL_ENV]).signatures["serving_default"]
    input_key = list(serve.structured_input_signature[1])[0]

    async def predict(request):
        body = orjson.loads(await request.body())
        x = tf.constant(np.asarray(body["instances"], dtype=np.float32))
        out = next(iter(serve(**{input_key: x}).values())).numpy()
        return Response(orjson.dumps({"predictions": out}, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    return Starlette(routes=[Route("/v1/models/{name}:predict", predict, methods=["POST"])])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("port", type=int)
    p.add_argument("--workers", type=int, default=os.cpu_count())
    args = p.parse_args()
    os.environ[MODEL_ENV] = os.path.abspath(args.model)
    import uvicorn
    uvicorn.run("serve_uvicorn:create_app", factory=True, host="127.0.0.1", port=args.port, workers=args.workers,
                loop="uvloop", http="httptools", log_level="warning", access_log=False,
                app_dir=os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
