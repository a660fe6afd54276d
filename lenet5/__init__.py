"""LeNet-5 as LeCun, Bottou, Bengio and Haffner (1998) describe it."""
