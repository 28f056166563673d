Console.Error.WriteLine("sora: not implemented yet");
return 1;
