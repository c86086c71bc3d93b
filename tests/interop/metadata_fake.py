#!/usr/bin/env python3
"""Timed metadata in hls.js, Shaka Player, video.js and the player page,
against a server part faked in the browser (run by hand; not in CI).

tests/browser/metadata.mjs in its e2e-fake mode plays the server's part in
the browser's network layer: each post is stamped on the next part fetched,
the emsg/ID3 box put into each rendition's next part and the DATERANGE into
its playlists, the dashboard's POST answered. It was the scaffold the player
side was built on before the endpoint existed, and it still separates a
player-side regression from a server-side one: if this passes and
tests/integration/test_metadata_players.py fails, look at the server.

  SLUICE_BIN=build-asan/sluice tests/interop/metadata_fake.py

Needs what the integration suite needs (deploy/packages.sh interop,
tests/browser: npm ci). Exit status 0 when every check passed."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import test_metadata_players  # noqa: E402


class FakedServerPartTest(test_metadata_players.MetadataPlayersTest):

    def test_players_with_the_server_part_faked(self):
        self.run_e2e("e2e-fake")


if __name__ == "__main__":
    unittest.main(defaultTest="FakedServerPartTest.test_players_with_the_server_part_faked",
                  verbosity=2)
