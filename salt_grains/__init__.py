"""Salt extension ``saltext.imds_ec2``: the ``ec2`` and ``ec2_tags`` grains, Salt 3006's
``metadata`` grain (opt-in), and the ``ec2_metadata`` beacon (EC2 notices as events).

The source lives in ``salt_grains/`` and installs as ``saltext.imds_ec2``, the
namespace Salt extensions share (the distribution ``saltext.imds-ec2``, built by
``packaging/saltext/``). Salt imports this package through the
``salt.loader`` entry point every time it builds any loader and looks for a
sub-directory named after the loader type (``grains/``, ``beacons/``), so this file stays
empty of imports.
"""
