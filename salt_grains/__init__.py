"""Salt extension: the ``ec2`` and ``ec2_tags`` grains from EC2 instance metadata.

Salt imports this package through the ``salt.loader`` entry point every time
it builds any loader and looks for a sub-directory named after the loader type
(here only ``grains/``), so this file stays empty of imports.
"""
