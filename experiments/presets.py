"""Presets: named overrides of flag values, which explicit flags override.

`cpu_demo` is the README's main job; the published configurations (the
original's `*_best.yaml` sweep files, one seed, wandb options dropped) are
named `<architecture>_<task>_c<chunk>`.
"""

PRESETS: dict[str, dict[str, object]] = {
    # A staircase Transformer (chunk 1) that learns parity on lengths 1..40
    # in about a minute on a 2-core CPU and keeps its accuracy far beyond.
    'cpu_demo': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        include_eos=0, fix_staircase_size_forward=1, embed_size=32,
        num_heads=4, group_size=2, num_recurrent_calls=2, batch_size=64,
        lr=1e-3, wd=1e-2, adam_beta1_inv=0.0319, dropout=0.0,
        second_training_steps=1500, test_length=500, seed=0,
        log_frequency=100, checkpoint_every=500),
    # The same budget for a causal Transformer of similar size (no positional
    # encoding, as in the original), for contrast.
    'cpu_demo_transformer': dict(
        task='parity_check', architecture='transformer', is_causal=1,
        include_eos=0, num_layers=4, embed_size=32, num_heads=4,
        batch_size=64, lr=1e-3, wd=1e-2, adam_beta1_inv=0.0319, dropout=0.0,
        second_training_steps=1500, test_length=500, seed=0,
        log_frequency=100, checkpoint_every=500),
    # The same budget for a block-recurrent Transformer (blocks of 2, two
    # state vectors, the recurrent layer in the middle of three), for contrast.
    'cpu_demo_brt': dict(
        task='parity_check', architecture='brt', include_eos=0, num_layers=3,
        recurrent_layer_index=2, chunk_size=2, num_state_vectors=2,
        embed_size=64, num_heads=4, batch_size=64, lr=1e-3, wd=1e-2,
        adam_beta1_inv=0.0319, dropout=0.0, second_training_steps=1500,
        test_length=500, seed=0, log_frequency=100, checkpoint_every=500),
    # The published configurations (the *_best.yaml sweep files, one seed;
    # wandb options dropped).
    # seed_sweeps/staircase/cycle_navigation/chunk_1_best.yaml
    'staircase_cycle_navigation_c1': dict(
        task='cycle_navigation', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=64,
        num_heads=4, lr=0.000491263237739457, dropout=0,
        second_training_steps=20000, fix_staircase_size_forward=1, wd=0,
        adam_beta1_inv=0.01523159058232245,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/cycle_navigation/chunk_2_best.yaml
    'staircase_cycle_navigation_c2': dict(
        task='cycle_navigation', architecture='my_staircase', is_causal=1,
        include_eos=0, validate=True, batch_size=64, embed_size=512,
        num_heads=16, lr=2.566220502901988e-05, dropout=0,
        second_training_steps=20000, fix_staircase_size_forward=2, wd=0.01,
        adam_beta1_inv=0.11371886530104656,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/cycle_navigation/chunk_4_best.yaml
    'staircase_cycle_navigation_c4': dict(
        task='cycle_navigation', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=64,
        num_heads=8, lr=0.0004572790611999609, dropout=0.2,
        second_training_steps=100000, fix_staircase_size_forward=4, wd=0.001,
        adam_beta1_inv=0.05479795095675179,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/cycle_navigation/chunk_8_best.yaml
    'staircase_cycle_navigation_c8': dict(
        task='cycle_navigation', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=64,
        num_heads=16, lr=0.00013370227233106143, dropout=0.2,
        second_training_steps=1000000, fix_staircase_size_forward=8, wd=0.1,
        adam_beta1_inv=0.010565929450888445,
        num_recurrent_calls=4, group_size=1),
    # seed_sweeps/staircase/even_pairs/chunk_1_best.yaml
    'staircase_even_pairs_c1': dict(
        task='even_pairs', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=128, embed_size=512,
        num_heads=4, lr=0.00011651272088680352, dropout=0.1,
        second_training_steps=20000, fix_staircase_size_forward=1, wd=0.0001,
        adam_beta1_inv=0.037403201922838955,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/even_pairs/chunk_2_best.yaml
    'staircase_even_pairs_c2': dict(
        task='even_pairs', architecture='my_staircase', is_causal=1,
        include_eos=0, validate=True, batch_size=128, embed_size=64,
        num_heads=4, lr=0.00010971356456426173, dropout=0.2,
        second_training_steps=20000, fix_staircase_size_forward=2, wd=0.01,
        adam_beta1_inv=0.04242393101286783,
        num_recurrent_calls=4, group_size=2),
    # seed_sweeps/staircase/even_pairs/chunk_4_best.yaml
    'staircase_even_pairs_c4': dict(
        task='even_pairs', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=128, embed_size=512,
        num_heads=16, lr=0.0008932865197520232, dropout=0.0,
        second_training_steps=100000, fix_staircase_size_forward=4, wd=0.0001,
        adam_beta1_inv=0.01221556976704287,
        num_recurrent_calls=4, group_size=1),
    # seed_sweeps/staircase/even_pairs/chunk_8_best.yaml
    'staircase_even_pairs_c8': dict(
        task='even_pairs', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=64,
        num_heads=16, lr=0.00025669310003980804, dropout=0.1,
        second_training_steps=1000000, fix_staircase_size_forward=8, wd=0.01,
        adam_beta1_inv=0.0933802712662743, num_recurrent_calls=2, group_size=1),
    # seed_sweeps/staircase/modular_arithmetic/chunk_1_best.yaml
    'staircase_modular_arithmetic_c1': dict(
        task='modular_arithmetic', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=512,
        num_heads=16, lr=9.215054932166196e-05, dropout=0.1,
        second_training_steps=20000, fix_staircase_size_forward=1, wd=0.01,
        adam_beta1_inv=0.024102180105318116,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/modular_arithmetic/chunk_2_best.yaml
    'staircase_modular_arithmetic_c2': dict(
        task='modular_arithmetic', architecture='my_staircase', is_causal=1,
        include_eos=0, validate=True, batch_size=256, embed_size=256,
        num_heads=16, lr=0.00034532112055968766, dropout=0,
        second_training_steps=20000, fix_staircase_size_forward=2, wd=0,
        adam_beta1_inv=0.18365574341700827,
        num_recurrent_calls=2, group_size=1),
    # seed_sweeps/staircase/modular_arithmetic/chunk_4_best.yaml
    'staircase_modular_arithmetic_c4': dict(
        task='modular_arithmetic', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=512,
        num_heads=4, lr=5.277652876347411e-05, dropout=0.2,
        second_training_steps=100000, fix_staircase_size_forward=4, wd=0.001,
        adam_beta1_inv=0.08740148359672252,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/modular_arithmetic/chunk_8_best.yaml
    'staircase_modular_arithmetic_c8': dict(
        task='modular_arithmetic', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=256, embed_size=256,
        num_heads=4, lr=0.0001546324663808628, dropout=0,
        second_training_steps=1000000, fix_staircase_size_forward=8, wd=0.01,
        adam_beta1_inv=0.01342544940677473,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/parity_check/chunk_1_best.yaml
    'staircase_parity_check_c1': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=64, embed_size=512,
        num_heads=8, lr=2.4387880865093464e-05, dropout=0.1,
        second_training_steps=20000, fix_staircase_size_forward=1, wd=0.001,
        adam_beta1_inv=0.14425757549992788,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/parity_check/chunk_2_best.yaml
    'staircase_parity_check_c2': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        include_eos=0, validate=True, batch_size=256, embed_size=64,
        num_heads=8, lr=0.0003551589862157637, dropout=0.1,
        second_training_steps=20000, fix_staircase_size_forward=2, wd=0.01,
        adam_beta1_inv=0.03185991498729463,
        num_recurrent_calls=2, group_size=2),
    # seed_sweeps/staircase/parity_check/chunk_4_best.yaml
    'staircase_parity_check_c4': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=128, embed_size=512,
        num_heads=16, lr=2.228639333491866e-05, dropout=0.0,
        second_training_steps=100000, fix_staircase_size_forward=4, wd=0.1,
        adam_beta1_inv=0.19636760363825748,
        num_recurrent_calls=4, group_size=1),
    # seed_sweeps/staircase/parity_check/chunk_8_best.yaml
    'staircase_parity_check_c8': dict(
        task='parity_check', architecture='my_staircase', is_causal=1,
        validate=True, include_eos=0, batch_size=64, embed_size=512,
        num_heads=8, lr=4.987161216327536e-05, dropout=0.2,
        second_training_steps=1000000, fix_staircase_size_forward=8, wd=1e-05,
        adam_beta1_inv=0.14743898083496587,
        num_recurrent_calls=4, group_size=2),
    # seed_sweeps/transformer/cycle_navigation/transformer_sweep.yaml
    'transformer_cycle_navigation': dict(
        task='cycle_navigation', architecture='transformer', is_causal=1,
        validate=True, include_eos=1, batch_size=128, embed_size=64,
        num_heads=8, num_layers=5, lr=0.0001, dropout=0.1,
        second_training_steps=200000, wd=0.01, adam_beta1_inv=0.1),
    # seed_sweeps/transformer/even_pairs/transformer_sweep.yaml
    'transformer_even_pairs': dict(
        task='even_pairs', architecture='transformer', is_causal=1,
        validate=True, include_eos=1, batch_size=128, embed_size=64,
        num_heads=8, num_layers=5, lr=0.0001, dropout=0.1,
        second_training_steps=200000, wd=0.01, adam_beta1_inv=0.1),
    # seed_sweeps/transformer/modular_arithmetic/transformer_sweep.yaml
    'transformer_modular_arithmetic': dict(
        task='modular_arithmetic', architecture='transformer', is_causal=1,
        validate=True, include_eos=1, batch_size=128, embed_size=64,
        num_heads=8, num_layers=5, lr=0.0001, dropout=0.1,
        second_training_steps=1000000, wd=0.01, adam_beta1_inv=0.1),
    # seed_sweeps/transformer/parity_check/transformer_sweep.yaml
    'transformer_parity_check': dict(
        task='parity_check', architecture='transformer', is_causal=1,
        validate=True, include_eos=1, batch_size=128, embed_size=64,
        num_heads=8, num_layers=5, lr=0.0001, dropout=0.1,
        second_training_steps=200000, wd=0.01, adam_beta1_inv=0.1),
    # seed_sweeps/brt/cycle_navigation/chunk_1_best.yaml
    'brt_cycle_navigation_c1': dict(task='cycle_navigation', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=128,
        embed_size=64, num_heads=8, num_layers=3, recurrent_layer_index=2,
        chunk_size=1, num_state_vectors=4, lr=1.7626494604078204e-05,
        dropout=0.2, wd=0.001, adam_beta1_inv=0.07196995417828975,
        second_training_steps=100000),
    # seed_sweeps/brt/cycle_navigation/chunk_2_best.yaml
    'brt_cycle_navigation_c2': dict(task='cycle_navigation', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=256, num_heads=4, num_layers=3, recurrent_layer_index=2,
        chunk_size=2, num_state_vectors=2, lr=0.0004071282606546677, dropout=0,
        wd=0.01, adam_beta1_inv=0.06343023600718231,
        second_training_steps=100000),
    # seed_sweeps/brt/cycle_navigation/chunk_4_best.yaml
    'brt_cycle_navigation_c4': dict(task='cycle_navigation', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=256, num_heads=8, num_layers=3, recurrent_layer_index=2,
        chunk_size=4, num_state_vectors=16, lr=0.00018280571740941852,
        dropout=0.1, wd=1e-06, adam_beta1_inv=0.08126768385639684,
        second_training_steps=200000),
    # seed_sweeps/brt/cycle_navigation/chunk_8_best.yaml
    'brt_cycle_navigation_c8': dict(task='cycle_navigation', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=512, num_heads=8, num_layers=3, recurrent_layer_index=2,
        chunk_size=8, num_state_vectors=8, lr=9.647224693941848e-05, dropout=0,
        wd=0.01, adam_beta1_inv=0.011189802926630375,
        second_training_steps=200000),
    # seed_sweeps/brt/even_pairs/chunk_1_best.yaml
    'brt_even_pairs_c1': dict(task='even_pairs', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=64,
        embed_size=512, num_heads=4, num_layers=3, recurrent_layer_index=2,
        chunk_size=1, num_state_vectors=1, lr=0.0001306004222636135,
        dropout=0.2, wd=0.01, adam_beta1_inv=0.03125275307569325,
        second_training_steps=50000),
    # seed_sweeps/brt/even_pairs/chunk_2_best.yaml
    'brt_even_pairs_c2': dict(task='even_pairs', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=64, num_heads=16, num_layers=3, recurrent_layer_index=2,
        chunk_size=2, num_state_vectors=8, lr=0.00013458369787504396,
        dropout=0.2, wd=0.0001, adam_beta1_inv=0.027578829110219975,
        second_training_steps=100000),
    # seed_sweeps/brt/even_pairs/chunk_4_best.yaml
    'brt_even_pairs_c4': dict(task='even_pairs', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=128,
        embed_size=64, num_heads=16, num_layers=3, recurrent_layer_index=2,
        chunk_size=4, num_state_vectors=16, lr=6.987905311122618e-05, dropout=0,
        wd=0.0001, adam_beta1_inv=0.042051765298811446,
        second_training_steps=200000),
    # seed_sweeps/brt/even_pairs/chunk_8_best.yaml
    'brt_even_pairs_c8': dict(task='even_pairs', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=64, num_heads=4, num_layers=3, recurrent_layer_index=2,
        chunk_size=8, num_state_vectors=32, lr=4.265690432352705e-05,
        dropout=0.1, wd=0.0001, adam_beta1_inv=0.13803254796061587,
        second_training_steps=200000),
    # seed_sweeps/brt/modular_arithmetic/chunk_1_best.yaml
    'brt_modular_arithmetic_c1': dict(task='modular_arithmetic',
        architecture='brt', is_causal=1, include_eos=0, validate=True,
        batch_size=64, embed_size=64, num_heads=8, num_layers=3,
        recurrent_layer_index=2, chunk_size=1, num_state_vectors=2,
        lr=8.119563998272268e-05, dropout=0.1, wd=1e-05,
        adam_beta1_inv=0.010466682223275847, second_training_steps=100000),
    # seed_sweeps/brt/modular_arithmetic/chunk_2_best.yaml
    'brt_modular_arithmetic_c2': dict(task='modular_arithmetic',
        architecture='brt', is_causal=1, include_eos=0, validate=True,
        batch_size=256, embed_size=64, num_heads=4, num_layers=3,
        recurrent_layer_index=2, chunk_size=2, num_state_vectors=8,
        lr=0.0003555883521648074, dropout=0.1, wd=0.0001,
        adam_beta1_inv=0.12386832935421924, second_training_steps=100000),
    # seed_sweeps/brt/modular_arithmetic/chunk_4_best.yaml
    'brt_modular_arithmetic_c4': dict(task='modular_arithmetic',
        architecture='brt', is_causal=1, include_eos=0, validate=True,
        batch_size=64, embed_size=64, num_heads=16, num_layers=3,
        recurrent_layer_index=2, chunk_size=4, num_state_vectors=8,
        lr=0.0002727190242852865, dropout=0.1, wd=0.001,
        adam_beta1_inv=0.06288004516788523, second_training_steps=200000),
    # seed_sweeps/brt/modular_arithmetic/chunk_8_best.yaml
    'brt_modular_arithmetic_c8': dict(task='modular_arithmetic',
        architecture='brt', is_causal=1, include_eos=0, validate=True,
        batch_size=256, embed_size=512, num_heads=4, num_layers=3,
        recurrent_layer_index=2, chunk_size=8, num_state_vectors=8,
        lr=7.41505404776239e-05, dropout=0, wd=0.0001,
        adam_beta1_inv=0.06621305413203679, second_training_steps=200000),
    # seed_sweeps/brt/parity_check/chunk_1_best.yaml
    'brt_parity_check_c1': dict(task='parity_check', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=128,
        embed_size=64, num_heads=4, num_layers=3, recurrent_layer_index=2,
        chunk_size=1, num_state_vectors=2, lr=0.0007850360302747605,
        dropout=0.1, wd=1e-05, adam_beta1_inv=0.04981069284839439,
        second_training_steps=50000),
    # seed_sweeps/brt/parity_check/chunk_2_best.yaml
    'brt_parity_check_c2': dict(task='parity_check', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=512, num_heads=4, num_layers=3, recurrent_layer_index=2,
        chunk_size=2, num_state_vectors=2, lr=6.688992327469197e-05, dropout=0,
        wd=0.01, adam_beta1_inv=0.03539313181396699,
        second_training_steps=100000),
    # seed_sweeps/brt/parity_check/chunk_4_best.yaml
    'brt_parity_check_c4': dict(task='parity_check', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=512, num_heads=16, num_layers=3, recurrent_layer_index=2,
        chunk_size=4, num_state_vectors=16, lr=2.0380321376965792e-05,
        dropout=0, wd=1e-05, adam_beta1_inv=0.06635009044234494,
        second_training_steps=200000),
    # seed_sweeps/brt/parity_check/chunk_8_best.yaml
    'brt_parity_check_c8': dict(task='parity_check', architecture='brt',
        is_causal=1, include_eos=0, validate=True, batch_size=256,
        embed_size=64, num_heads=8, num_layers=3, recurrent_layer_index=2,
        chunk_size=8, num_state_vectors=32, lr=0.0004473465331297665,
        dropout=0.1, wd=0.0001, adam_beta1_inv=0.0922214302151622,
        second_training_steps=200000),
}
