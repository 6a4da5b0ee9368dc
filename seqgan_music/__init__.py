"""seqgan-music: SeqGAN for melodies."""
