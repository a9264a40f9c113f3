#!/usr/bin/env python3
"""Writes tfrecord/testdata/tensorflow.tfrecord with TensorFlow's own
tf.io.TFRecordWriter: the records b"", b"kerasgo" and bytes 0..255 twice, which
tfrecord's tests read and write back byte for byte. Run once; the file is
committed."""

import os

import tensorflow as tf

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfrecord", "testdata", "tensorflow.tfrecord")

with tf.io.TFRecordWriter(OUT) as w:
    for record in (b"", b"kerasgo", bytes(range(256)) * 2):
        w.write(record)
print(OUT, os.path.getsize(OUT), "bytes")
